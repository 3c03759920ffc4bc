"""The implementations under test and how to call them: torch on each device, our NumPy losses, SciPy, and a
user's function. Each adapter turns exact inputs (nested lists of format values) into its framework's arrays
and returns flattened outputs and the gradient of their sum, as Python floats."""
