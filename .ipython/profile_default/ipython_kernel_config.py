# IPython kernel settings for running the book's notebooks (nbval, jupyter-book).
# Use it with:  IPYTHONDIR=<repository>/.ipython
c = get_config()  # noqa: F821  (provided by IPython when it loads this file)

# By default ipykernel copies everything written to the process's file descriptors 1 and 2
# into cell outputs, including TensorFlow's C++ start-up log lines. Keep only what Python
# code prints.
c.IPKernelApp.capture_fd_output = False
