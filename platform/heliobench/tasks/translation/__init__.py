"""HMI→AIA image translation (Park et al. 2019) and AIA channel selection (Lim et al. 2021)."""
