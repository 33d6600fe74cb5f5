//! An RRset as the answer writer copies it: what the zone index and the live table of
//! service names both hand out.

/// One RRset ready to copy into an answer.
#[derive(Clone, Copy)]
pub struct RrSet<'a> {
    pub rtype: u16,
    pub count: u16,
    /// Every record as `C0 0C | TYPE | CLASS | TTL | RDLENGTH | RDATA`: the owner is a pointer
    /// to the question name, which is the owner of everything answered at a node.
    pub wire: &'a [u8],
}
