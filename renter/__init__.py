"""Renter side of Latent: open and fund payment channels, sign vouchers, close and withdraw."""
