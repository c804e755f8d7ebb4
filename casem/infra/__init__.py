"""Infrastructure generators: Helm values per datacenter and the infrastructure report.

Both read only the registries (casem/topology) and the datacenter catalog, so what is deployed
and what is documented cannot drift from the code.
"""
