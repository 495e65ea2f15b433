"""Offer catalogue, eligibility, personalised selection and its decision log."""
