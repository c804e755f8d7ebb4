"""The gRPC edge of case-api: casem.v1.CaseAPI over the same application services as HTTP."""
