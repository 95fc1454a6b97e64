"""The Resource Manager VM: the root VM that owns memory and creates every other VM.

It is reached only through its two message queues and acts only through
hypercalls, like the real one.
"""
