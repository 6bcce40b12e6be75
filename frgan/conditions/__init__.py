"""Motion-condition generators G_C (paper section 3.1): pose heatmaps and the pose LSTM."""
