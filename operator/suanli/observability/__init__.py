"""Dashboards and alerts for the suanli centre, written as Python and generated to files.

Why as code: the dashboards, the plain rules file and the PrometheusRule must agree with each
other and with the metric names the operator exposes. Generating all of them from one Python
source (``make generate``), with a drift check (``make check-generated``) and a test that every
PromQL expression names only metrics ``suanli.metrics`` defines, keeps them from rotting apart.
"""
