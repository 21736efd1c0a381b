# SPDX-License-Identifier: MIT
"""`pip install --no-build-isolation .` from the top of the tree: the same
package and extensions as python/setup.py, which this runs."""
import os
import runpy

HERE = os.path.dirname(os.path.abspath(__file__))
runpy.run_path(os.path.join(HERE, "python", "setup.py"), run_name="pshm_setup")["pshm_setup"](HERE)
