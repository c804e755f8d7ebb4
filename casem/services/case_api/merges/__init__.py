"""casem's case merges: merge duplicates into a primary case (carried out by the caseworker's workflow)."""
