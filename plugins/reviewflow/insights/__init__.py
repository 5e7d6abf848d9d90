"""Insights: which products have a problem today (tests with FDR control), what people complain about, trends."""
