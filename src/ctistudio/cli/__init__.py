"""The ``ctistudio`` command line: thin commands over the services."""
