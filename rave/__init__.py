"""rave: reweighted autoencoded variational Bayes (RAVE) enhanced sampling with OpenMM."""

__version__ = "0.1.0"
