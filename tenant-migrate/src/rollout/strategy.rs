use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tenancy_core::TenantId;

use super::RolloutError;

/// How a rollout moves through the fleet.
///
/// Tenants are ordered deterministically (see [`Targeting`](super::Targeting)), then
/// cut into waves: wave `n + 1` opens only when wave `n` has finished, its soak time
/// has passed and the failures stay within the threshold; otherwise the rollout halts.
///
/// ```
/// use std::time::Duration;
/// use tenant_migrate::{CanaryTenants, FailureThreshold, Strategy};
///
/// let waves = Strategy::waves([10, 50, 100])?
///     .with_soak(Duration::from_secs(600))
///     .with_max_failures(FailureThreshold::Percent(2.0));
/// let canary = Strategy::canary(CanaryTenants::Tag("staging".into()), waves)?;
/// assert_eq!("waves:10,50,100".parse::<Strategy>()?, Strategy::waves([10, 50, 100])?);
/// # Ok::<(), tenant_migrate::RolloutError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Strategy {
    /// Every targeted tenant in one wave; a failed tenant fails alone.
    AllAtOnce,
    /// Cumulative waves, e.g. 10 %, then up to 50 %, then the rest.
    Waves {
        /// Cumulative shares of the targeted tenants, strictly increasing, ending at 100.
        percents: Vec<u8>,
        /// The wait after each wave before the next opens.
        #[serde(with = "millis")]
        soak: Duration,
        /// The failures (in the whole rollout) beyond which it halts.
        max_failures: FailureThreshold,
    },
    /// Canary tenants first (any failure among them halts), then the rest with `then`.
    Canary {
        /// Which tenants are the canaries.
        tenants: CanaryTenants,
        /// The wait after the canary wave.
        #[serde(with = "millis")]
        soak: Duration,
        /// The strategy for every other tenant (not itself a canary).
        then: Box<Strategy>,
    },
}

/// The failures beyond which a wave strategy halts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureThreshold {
    /// At most this many failed tenants.
    Count(u64),
    /// At most this share (0–100) of the targeted tenants.
    Percent(f64),
}

/// Which tenants form a canary wave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CanaryTenants {
    /// These tenants (those among the targeted ones).
    Ids(Vec<TenantId>),
    /// The first `n` targeted tenants in rollout order.
    Count(usize),
    /// The targeted tenants carrying this tag (e.g. `staging`).
    Tag(String),
}

/// What a runner checks before opening a wave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct WaveGate {
    /// The wait after the previous wave finished.
    pub(crate) soak_before: Duration,
    /// The most failures allowed while this wave runs (`None`: no limit).
    pub(crate) max_failures: Option<u64>,
}

impl Strategy {
    /// Cumulative waves with no soak time and a halt on the first failure; tune with
    /// [`with_soak`](Self::with_soak) and [`with_max_failures`](Self::with_max_failures).
    pub fn waves(percents: impl IntoIterator<Item = u8>) -> Result<Self, RolloutError> {
        let percents: Vec<u8> = percents.into_iter().collect();
        let increasing = percents.windows(2).all(|pair| pair[0] < pair[1]);
        if percents.is_empty() || !increasing || percents[0] == 0 || percents.last() != Some(&100) {
            return Err(RolloutError::InvalidStrategy(format!(
                "wave shares {percents:?} must be strictly increasing percentages ending at 100, e.g. 10,50,100"
            )));
        }
        Ok(Self::Waves {
            percents,
            soak: Duration::ZERO,
            max_failures: FailureThreshold::Count(0),
        })
    }

    /// Canary tenants first, then the rest with `then` (which must not be a canary).
    pub fn canary(tenants: CanaryTenants, then: Strategy) -> Result<Self, RolloutError> {
        if matches!(then, Self::Canary { .. }) {
            return Err(RolloutError::InvalidStrategy(
                "a canary's `then` strategy cannot itself be a canary; use all or waves".into(),
            ));
        }
        if matches!(tenants, CanaryTenants::Count(0)) || tenants == CanaryTenants::Ids(Vec::new()) {
            return Err(RolloutError::InvalidStrategy(
                "a canary needs at least one tenant".into(),
            ));
        }
        Ok(Self::Canary {
            tenants,
            soak: Duration::ZERO,
            then: Box::new(then),
        })
    }

    /// Sets the soak time after each wave (the canary wave, and the waves after it).
    pub fn with_soak(self, soak: Duration) -> Self {
        match self {
            Self::AllAtOnce => Self::AllAtOnce,
            Self::Waves {
                percents,
                max_failures,
                ..
            } => Self::Waves {
                percents,
                soak,
                max_failures,
            },
            Self::Canary { tenants, then, .. } => Self::Canary {
                tenants,
                soak,
                then: Box::new(then.with_soak(soak)),
            },
        }
    }

    /// Sets the failure threshold. On [`Strategy::AllAtOnce`] this makes a single
    /// 100 % wave that halts beyond the threshold.
    pub fn with_max_failures(self, max_failures: FailureThreshold) -> Self {
        match self {
            Self::AllAtOnce => Self::Waves {
                percents: vec![100],
                soak: Duration::ZERO,
                max_failures,
            },
            Self::Waves { percents, soak, .. } => Self::Waves {
                percents,
                soak,
                max_failures,
            },
            Self::Canary {
                tenants,
                soak,
                then,
            } => Self::Canary {
                tenants,
                soak,
                then: Box::new(then.with_max_failures(max_failures)),
            },
        }
    }

    /// The gate of wave `wave` for a rollout of `total` tenants.
    pub(crate) fn gate(&self, wave: u32, total: u64) -> WaveGate {
        match self {
            Self::AllAtOnce => WaveGate {
                soak_before: Duration::ZERO,
                max_failures: None,
            },
            Self::Waves {
                soak, max_failures, ..
            } => WaveGate {
                soak_before: if wave == 0 { Duration::ZERO } else { *soak },
                max_failures: Some(max_failures.allowed(total)),
            },
            Self::Canary { soak, then, .. } => match wave {
                0 => WaveGate {
                    soak_before: Duration::ZERO,
                    max_failures: Some(0),
                },
                1 => WaveGate {
                    soak_before: *soak,
                    ..then.gate(0, total)
                },
                n => then.gate(n - 1, total),
            },
        }
    }
}

impl FailureThreshold {
    /// The number of failures allowed among `total` tenants.
    pub fn allowed(self, total: u64) -> u64 {
        match self {
            Self::Count(n) => n,
            // Rounded down: 2 % of 120 tenants allows 2 failures.
            Self::Percent(p) => (p.clamp(0.0, 100.0) / 100.0 * total as f64).floor() as u64,
        }
    }
}

impl FromStr for FailureThreshold {
    type Err = RolloutError;

    /// `N` (a count) or `P%` (a percentage of the targeted tenants).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            RolloutError::InvalidStrategy(format!(
                "max failures `{s}` must be a count such as 5 or a percentage such as 2%"
            ))
        };
        match s.trim().strip_suffix('%') {
            Some(p) => p
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|p| (0.0..=100.0).contains(p))
                .map(Self::Percent)
                .ok_or_else(invalid),
            None => s.trim().parse().map(Self::Count).map_err(|_| invalid()),
        }
    }
}

impl FromStr for Strategy {
    type Err = RolloutError;

    /// The command-line form: `all`, `waves:10,50,100`, `canary:N` or `canary:tag=TAG`
    /// (a canary is followed by all the other tenants at once).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s == "all" {
            return Ok(Self::AllAtOnce);
        }
        if let Some(list) = s.strip_prefix("waves:") {
            let percents = list
                .split(',')
                .map(|p| p.trim().trim_end_matches('%').parse::<u8>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| {
                    RolloutError::InvalidStrategy(format!(
                        "`{s}` lists shares that are not whole percentages; write e.g. waves:10,50,100"
                    ))
                })?;
            return Self::waves(percents);
        }
        if let Some(which) = s.strip_prefix("canary:") {
            let tenants = match which.strip_prefix("tag=") {
                Some(tag) => CanaryTenants::Tag(
                    tenancy_core::validate_tag(tag)
                        .map_err(|e| RolloutError::InvalidStrategy(e.to_string()))?,
                ),
                None => CanaryTenants::Count(which.trim().parse().map_err(|_| {
                    RolloutError::InvalidStrategy(format!(
                        "`{s}` names no canary; write canary:N (a count) or canary:tag=TAG"
                    ))
                })?),
            };
            return Self::canary(tenants, Self::AllAtOnce);
        }
        Err(RolloutError::InvalidStrategy(format!(
            "unknown strategy `{s}`; use all, waves:10,50,100, canary:N or canary:tag=TAG"
        )))
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllAtOnce => f.write_str("all"),
            Self::Waves { percents, .. } => {
                let list: Vec<String> = percents.iter().map(u8::to_string).collect();
                write!(f, "waves:{}", list.join(","))
            }
            Self::Canary { tenants, then, .. } => match tenants {
                CanaryTenants::Count(n) => write!(f, "canary:{n} then {then}"),
                CanaryTenants::Tag(tag) => write!(f, "canary:tag={tag} then {then}"),
                CanaryTenants::Ids(ids) => write!(f, "canary:{} ids then {then}", ids.len()),
            },
        }
    }
}

/// Durations stored as whole milliseconds in the strategy JSON.
mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_command_line_forms() {
        assert_eq!("all".parse::<Strategy>().unwrap(), Strategy::AllAtOnce);
        assert_eq!(
            "canary:3".parse::<Strategy>().unwrap(),
            Strategy::canary(CanaryTenants::Count(3), Strategy::AllAtOnce).unwrap()
        );
        assert_eq!(
            "canary:tag=staging".parse::<Strategy>().unwrap(),
            Strategy::canary(CanaryTenants::Tag("staging".into()), Strategy::AllAtOnce).unwrap()
        );
        for bad in [
            "waves:50,10,100",
            "waves:10,50",
            "waves:x",
            "canary:",
            "blue-green",
        ] {
            assert!(
                matches!(
                    bad.parse::<Strategy>(),
                    Err(RolloutError::InvalidStrategy(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn thresholds_parse_and_scale() {
        assert_eq!("5".parse::<FailureThreshold>().unwrap().allowed(1000), 5);
        assert_eq!("2%".parse::<FailureThreshold>().unwrap().allowed(120), 2);
        assert!("150%".parse::<FailureThreshold>().is_err());
        assert!("-1".parse::<FailureThreshold>().is_err());
    }

    #[test]
    fn gates_follow_the_strategy() {
        let soak = Duration::from_secs(60);
        let waves = Strategy::waves([10, 100])
            .unwrap()
            .with_soak(soak)
            .with_max_failures(FailureThreshold::Percent(10.0));
        assert_eq!(waves.gate(0, 50).soak_before, Duration::ZERO);
        assert_eq!(waves.gate(1, 50).soak_before, soak);
        assert_eq!(waves.gate(1, 50).max_failures, Some(5));

        let canary = Strategy::canary(CanaryTenants::Count(1), waves).unwrap();
        assert_eq!(canary.gate(0, 50).max_failures, Some(0));
        assert_eq!(canary.gate(1, 50).soak_before, Duration::ZERO);
        let canary = canary.with_soak(2 * soak);
        assert_eq!(canary.gate(1, 50).soak_before, 2 * soak);
        assert_eq!(canary.gate(2, 50).max_failures, Some(5));
        assert_eq!(Strategy::AllAtOnce.gate(0, 50).max_failures, None);
    }

    #[test]
    fn round_trips_through_json() {
        let strategy = Strategy::canary(
            CanaryTenants::Tag("staging".into()),
            Strategy::waves([25, 100]).unwrap(),
        )
        .unwrap()
        .with_soak(Duration::from_millis(1500));
        let json = serde_json::to_string(&strategy).unwrap();
        assert_eq!(serde_json::from_str::<Strategy>(&json).unwrap(), strategy);
    }
}
