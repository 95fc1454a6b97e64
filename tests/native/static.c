/* A statically linked program (no libc, no PT_INTERP): exec refuses it, never runs it. */
void _start(void)
{
	for (;;)
		;
}
