//! The server session: `ftps_server_session_*`, one to one with `ftps_proto::server`.
