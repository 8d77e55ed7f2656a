"""Helpers of bench/invoke.py: process trees, the Lambda API client, servers, reports."""
