use serde::{Deserialize, Serialize};

tenancy_core::open_enum! {
    /// A specific region code (`region_selection.code` of type `specific`, `RegionsInfo`).
    ///
    /// The spec warns that the codes are not a stable API; fetch the current list with
    /// [`ManagementClient::available_regions`](crate::ManagementClient::available_regions).
    pub enum Region {
        /// `us-east-1`.
        UsEast1 => "us-east-1",
        /// `us-east-2`.
        UsEast2 => "us-east-2",
        /// `us-west-1`.
        UsWest1 => "us-west-1",
        /// `us-west-2`.
        UsWest2 => "us-west-2",
        /// `ap-east-1`.
        ApEast1 => "ap-east-1",
        /// `ap-southeast-1`.
        ApSoutheast1 => "ap-southeast-1",
        /// `ap-northeast-1`.
        ApNortheast1 => "ap-northeast-1",
        /// `ap-northeast-2`.
        ApNortheast2 => "ap-northeast-2",
        /// `ap-southeast-2`.
        ApSoutheast2 => "ap-southeast-2",
        /// `eu-west-1`.
        EuWest1 => "eu-west-1",
        /// `eu-west-2`.
        EuWest2 => "eu-west-2",
        /// `eu-west-3`.
        EuWest3 => "eu-west-3",
        /// `eu-north-1`.
        EuNorth1 => "eu-north-1",
        /// `eu-central-1`.
        EuCentral1 => "eu-central-1",
        /// `eu-central-2`.
        EuCentral2 => "eu-central-2",
        /// `ca-central-1`.
        CaCentral1 => "ca-central-1",
        /// `ap-south-1`.
        ApSouth1 => "ap-south-1",
        /// `sa-east-1`.
        SaEast1 => "sa-east-1",
    }
    /// A region this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// A smart region group (`region_selection.code` of type `smartGroup`).
    pub enum SmartGroup {
        /// `americas`.
        Americas => "americas",
        /// `emea`.
        Emea => "emea",
        /// `apac`.
        Apac => "apac",
    }
    /// A group this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// The cloud provider of a region (`RegionsInfo…provider`).
    pub enum RegionProvider {
        /// `AWS`.
        Aws => "AWS",
        /// `FLY`.
        Fly => "FLY",
        /// `AWS_K8S`.
        AwsK8s => "AWS_K8S",
        /// `AWS_NIMBUS`.
        AwsNimbus => "AWS_NIMBUS",
    }
    /// A provider this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// Why a region is flagged (`RegionsInfo…status`).
    pub enum RegionCapacity {
        /// `capacity`: the region is short of capacity.
        Capacity => "capacity",
        /// `other`.
        Other => "other",
    }
    /// A value this version of the crate does not know, kept as sent.
    other Unknown
}

tenancy_core::open_enum! {
    /// A continent code for region recommendations (`continent` query parameter).
    pub enum Continent {
        /// North America.
        NorthAmerica => "NA",
        /// South America.
        SouthAmerica => "SA",
        /// Europe.
        Europe => "EU",
        /// Africa.
        Africa => "AF",
        /// Asia.
        Asia => "AS",
        /// Oceania.
        Oceania => "OC",
        /// Antarctica.
        Antarctica => "AN",
    }
    /// A code this version of the crate does not know, sent as given.
    other Unknown
}

/// Where a new project runs: the `region_selection` of `V1CreateProjectBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "code")]
#[non_exhaustive]
pub enum RegionSelection {
    /// `{"type": "specific", "code": "<region>"}`.
    #[serde(rename = "specific")]
    Specific(Region),
    /// `{"type": "smartGroup", "code": "<group>"}`: the platform picks a region.
    #[serde(rename = "smartGroup")]
    SmartGroup(SmartGroup),
}

impl std::str::FromStr for RegionSelection {
    type Err = std::convert::Infallible;

    /// A smart group code (`americas`, `emea`, `apac`) selects the group; any other
    /// code a specific region (kept even when this crate does not know it).
    ///
    /// ```
    /// use supabase_mgmt::{Region, RegionSelection, SmartGroup};
    ///
    /// assert_eq!("emea".parse(), Ok(RegionSelection::SmartGroup(SmartGroup::Emea)));
    /// assert_eq!("eu-west-2".parse(), Ok(RegionSelection::Specific(Region::EuWest2)));
    /// ```
    fn from_str(code: &str) -> Result<Self, Self::Err> {
        let code = code.trim();
        Ok(match SmartGroup::from(code) {
            SmartGroup::Unknown(_) => Self::Specific(Region::from(code)),
            group => Self::SmartGroup(group),
        })
    }
}

/// The answer of `GET /v1/projects/available-regions` (`RegionsInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct AvailableRegions {
    /// The regions recommended for the caller.
    pub recommendations: RegionRecommendations,
    /// Every region.
    pub all: RegionList,
}

/// `RegionsInfo.recommendations`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RegionRecommendations {
    /// The recommended smart group.
    #[serde(rename = "smartGroup")]
    pub smart_group: SmartGroupRegion,
    /// The recommended specific regions.
    pub specific: Vec<SpecificRegion>,
}

/// `RegionsInfo.all`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct RegionList {
    /// Every smart group.
    #[serde(rename = "smartGroup")]
    pub smart_group: Vec<SmartGroupRegion>,
    /// Every specific region.
    pub specific: Vec<SpecificRegion>,
}

/// A smart group in `RegionsInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SmartGroupRegion {
    /// Its display name.
    pub name: String,
    /// Its code.
    pub code: SmartGroup,
}

/// A specific region in `RegionsInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct SpecificRegion {
    /// Its display name.
    pub name: String,
    /// Its code.
    pub code: Region,
    /// Its provider.
    pub provider: RegionProvider,
    /// A flag such as `capacity`, when present.
    #[serde(default)]
    pub status: Option<RegionCapacity>,
}
