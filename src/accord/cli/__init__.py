"""The ``accord`` command: a thin terminal shell over the library."""
