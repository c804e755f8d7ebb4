"""The single definitions of casem's services, topics, tenants and datacenters.

Code, the Helm chart and the infrastructure report all read these modules; nothing else
spells a service name, a topic name or a tenant name.
"""
