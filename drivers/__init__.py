"""Built-in storegw drivers, one package per device family."""
