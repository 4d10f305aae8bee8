//! The config and facts parsers given every cut and many corruptions of a valid file: an error
//! or a value, never a panic.

use std::path::Path;

use crate::config::Config;
use crate::facts::FactsFile;

const CONFIG: &str = "broker_url = \"mqtt://[::1]:1883\"\ndevice_id = \"mtr-1\"\n\
                      facts_file = \"f.toml\"\nreport_interval_secs = 0x10\n\
                      topic_prefix = \"a/b\"\n";
const FACTS: &str = "device_id = \"é\"\nkind = \"surface_hub\"\napp_version = \"4.0.64.0\"\n\
                     os_build = '15063.1835'\n[table]\nx = [1, 2]\n";

/// Every cut of a file and a spread of corrupted bytes give an error or a value, never a
/// panic: the daemon reads these files while it runs.
#[test]
fn truncated_and_corrupted_files_never_panic() {
    let path = Path::new("x.toml");
    for text in [CONFIG, FACTS] {
        for cut in 0..=text.len() {
            if let Some(prefix) = text.get(..cut) {
                let _ = Config::parse(path, prefix);
                let _ = FactsFile::parse(path, prefix);
            }
        }
        let mut rng = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..2_000 {
            let mut bytes = text.as_bytes().to_vec();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let at = usize::try_from(rng % bytes.len() as u64).expect("index fits");
                bytes[at] = (rng >> 32) as u8;
            }
            let corrupted = String::from_utf8_lossy(&bytes);
            let _ = Config::parse(path, &corrupted);
            let _ = FactsFile::parse(path, &corrupted);
        }
    }
}
