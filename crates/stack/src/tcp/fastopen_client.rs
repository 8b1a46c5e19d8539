//! TCP Fast Open, the client (RFC 7413 §4.1; Linux's `tcp_send_syn_data`,
//! `tcp_rcv_fastopen_synack`, `tcp_fastopen_cache_get` / `_set`,
//! `tcp_fastopen_cookie_check`).
