// Run by evcxr when a kernel starts (EVCXR_CONFIG_DIR, see kernel/evcxr-kernel.sh).
// The first cell of a session that uses `?` fails to compile once: evcxr then wraps this and
// every later cell in a closure returning Result and compiles again. This line pays that
// second compilation at start, on a crate without dependencies (~0.3 s), instead of in the
// first `?` cell of each notebook, where it would recompile against the kit and Polars.
"0".parse::<u8>()?;
