"""Privacy and security (chapter 08, in progress): what a gradient leaks, differential privacy's
accountant, and the pieces of secure aggregation. Import from the modules:
:mod:`~.accountant`, :mod:`~.shamir`, :mod:`~.fixed_point`, :mod:`~.leakage`.
"""
