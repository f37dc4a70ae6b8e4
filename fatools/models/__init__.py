"""Model catalogue, facetorch configuration, model store and weight conversions."""
