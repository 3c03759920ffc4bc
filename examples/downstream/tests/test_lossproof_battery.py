"""lossproof's battery on the functions named in pyproject.toml's [tool.lossproof.subjects]: agreement with the
exact oracle (edge problems and a Hypothesis search), no overflow, and the special-value table, in the formats
named there. The plugin (installed with lossproof) parametrizes these tests; importing them is all it takes."""

from lossproof.battery.test_agreement import test_agreement  # noqa: F401
from lossproof.battery.test_properties import test_no_overflow  # noqa: F401
from lossproof.battery.test_special_values import test_special_value  # noqa: F401
