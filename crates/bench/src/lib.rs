//! netpath-bench: criterion benchmarks live in `benches/`.
