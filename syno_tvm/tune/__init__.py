"""Targets, MetaSchedule tuning and latency measurement."""
