"""The five baselines of Tables 1 and 3 (MCNet, MoCoGAN, Villegas et al. 2017, VGAN, Mathieu et
al.), one module each, behind the common generator interface of `frgan` (issue 7)."""
