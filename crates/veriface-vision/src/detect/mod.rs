//! dlib's MMOD CNN face detector: the pyramid, the network pass, candidate
//! extraction, non-max suppression and the mapping back to image pixels.

pub mod fast;
pub mod largest;
pub mod layout;
pub mod nms;
pub mod pipeline;
