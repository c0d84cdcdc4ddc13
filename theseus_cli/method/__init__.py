"""The Theseus method (paper section 3): grouping layers into modules, replacing
masks and schedule, the routed hybrid, successor assembly; parameter counts."""
