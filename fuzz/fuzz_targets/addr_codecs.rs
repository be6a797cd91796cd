//! The address codecs fed arbitrary bytes: never panic, and whatever a parser accepts survives
//! encode → parse unchanged. The first byte picks the parser.
#![no_main]

use ftps_proto::codec::addr;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, text)) = data.split_first() else {
        return;
    };
    match which % 5 {
        0 => {
            if let Ok(sock) = addr::parse_pasv_reply(text) {
                let again = addr::parse_pasv_reply(addr::pasv_reply_text(sock).as_bytes());
                assert_eq!(again, Ok(sock));
            }
        }
        1 => {
            if let Ok(port) = addr::parse_epsv_reply(text) {
                let again = addr::parse_epsv_reply(addr::epsv_reply_text(port).as_bytes());
                assert_eq!(again, Ok(port));
            }
        }
        2 => {
            if let Ok(sock) = addr::parse_port_argument(text) {
                let mut wire = Vec::new();
                addr::encode_port_argument(sock, &mut wire);
                assert_eq!(addr::parse_port_argument(&wire), Ok(sock));
            }
        }
        3 => {
            if let Ok(sock) = addr::parse_eprt_argument(text) {
                let mut wire = Vec::new();
                addr::encode_eprt_argument(sock, &mut wire);
                assert_eq!(addr::parse_eprt_argument(&wire), Ok(sock));
            }
        }
        _ => {
            let _ = addr::parse_epsv_argument(Some(text));
        }
    }
});
