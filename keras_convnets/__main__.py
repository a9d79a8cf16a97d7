"""`python -m keras_convnets` is the `keras-convnets` command."""

import sys

from keras_convnets.cli import main

sys.exit(main())
