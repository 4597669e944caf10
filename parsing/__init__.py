"""Face parsing: the label scheme's pictures and statistics, the offline MediaPipe backend, the in-model parser
backend, the CelebAMask-HQ reader and parser training."""
