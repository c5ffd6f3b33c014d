"""Spike traces (HDF5), streaming statistics, encoder comparison and plots."""
