"""Three-stage training: freeze policies, trainer wiring, distributed launch."""
