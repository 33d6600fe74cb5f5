//! [`View`]: which side of split horizon a listener answers for. Shared by the serving code
//! and the metrics. Ground floor: imports nothing of ours.

/// Which view a listener answers from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum View {
    /// The ZeroTier side: members, private records, forwarding, for allowed clients only.
    Backhaul,
    /// `[public]` addresses: the public zone for everyone; never forwards, never transfers.
    Public,
}

impl View {
    pub fn name(self) -> &'static str {
        match self {
            View::Backhaul => "backhaul",
            View::Public => "public",
        }
    }
}
