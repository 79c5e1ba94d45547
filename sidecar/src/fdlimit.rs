//! The descriptor limit: raised from its soft to its hard value at startup, so the tailer's
//! files and the metrics server's connections have as much room as the container allows
//! (sidecar/README.md, "Metrics server"). Runtimes often start processes with a soft limit of
//! 1,024 under a much higher hard one, and every tailed file holds a descriptor.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Raises the soft `RLIMIT_NOFILE` to the hard one. Returns `(before, after)` when it changed
/// it, `None` when it was already there (or unlimited). The error is the `setrlimit` one.
pub fn raise_nofile() -> std::io::Result<Option<(u64, u64)>> {
    let Rlimit { current, maximum } = getrlimit(Resource::Nofile);
    match (current, maximum) {
        (Some(soft), Some(hard)) if soft < hard => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard),
                    maximum: Some(hard),
                },
            )?;
            Ok(Some((soft, hard)))
        }
        (Some(soft), None) => {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: None,
                    maximum: None,
                },
            )?;
            Ok(Some((soft, u64::MAX)))
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let hard = getrlimit(Resource::Nofile).maximum;
        // A soft limit below the hard one, as container runtimes often start processes with
        // (halved, so the other tests of this process keep plenty).
        if let Some(hard) = hard {
            setrlimit(
                Resource::Nofile,
                Rlimit {
                    current: Some(hard / 2),
                    maximum: Some(hard),
                },
            )
            .unwrap();
            assert_eq!(raise_nofile().unwrap(), Some((hard / 2, hard)));
        } else {
            raise_nofile().unwrap();
        }
        let now = getrlimit(Resource::Nofile);
        assert_eq!(now.current, hard);
        assert_eq!(now.maximum, hard);
        assert_eq!(raise_nofile().unwrap(), None, "nothing left to raise");
    }
}
