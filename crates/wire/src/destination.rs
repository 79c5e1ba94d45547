//! Where a delivery stream delivers: it decides the shape of the transform's output, and which
//! records a redrive knows would fail again.

/// The three destinations firetail shapes records for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Destination {
    /// Datadog's Firehose HTTP endpoint intake.
    Datadog,
    /// Amazon OpenSearch Service: one single-line JSON document per record.
    #[cfg_attr(feature = "clap", value(name = "opensearch", alias = "elasticsearch"))]
    OpenSearch,
    /// Amazon S3.
    S3,
}

impl Destination {
    /// Every destination.
    pub const ALL: [Destination; 3] = [Self::Datadog, Self::OpenSearch, Self::S3];

    /// The name in settings (`FIRETAIL_DESTINATION`, `--destination`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Datadog => "datadog",
            Self::OpenSearch => "opensearch",
            Self::S3 => "s3",
        }
    }
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a destination.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a destination: expected datadog, opensearch or s3")]
pub struct UnknownDestination(pub String);

impl std::str::FromStr for Destination {
    type Err = UnknownDestination;

    /// Case-insensitive; `elasticsearch` is accepted for OpenSearch.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "datadog" => Ok(Self::Datadog),
            "opensearch" | "elasticsearch" => Ok(Self::OpenSearch),
            "s3" => Ok(Self::S3),
            _ => Err(UnknownDestination(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for d in Destination::ALL {
            assert_eq!(d.as_str().parse::<Destination>(), Ok(d));
            assert_eq!(d.to_string().to_uppercase().parse::<Destination>(), Ok(d));
        }
        assert_eq!("elasticsearch".parse(), Ok(Destination::OpenSearch));
        assert!("splunk".parse::<Destination>().is_err());
    }

    #[cfg(feature = "clap")]
    #[test]
    fn command_line_names_are_the_settings_names() {
        use clap::ValueEnum as _;
        for v in Destination::ALL {
            let possible = v.to_possible_value().expect("every variant has a name");
            assert_eq!(possible.get_name(), v.as_str());
        }
    }
}
