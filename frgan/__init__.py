"""FRGAN-Repro: the method (G_M, G_R, D_I, D_V) and everything every method shares."""


def load(folder, device: str = "cpu", sigma_px=None):
    """A trained model (models/<dataset>/<method>/seed-<s>) with `.generate(image, conditions,
    input_condition=None)`; see frgan.api. Imported lazily: `import frgan` stays torch-free."""
    from frgan.api import load_model
    return load_model(folder, device=device, sigma_px=sigma_px)
