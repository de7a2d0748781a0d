"""Point-in-time joins of feature tables onto label logs."""
