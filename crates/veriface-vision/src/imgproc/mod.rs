//! Image operations that must match dlib's bit for bit: bilinear resizing
//! and the `pyramid_down<2>` family.

pub mod chain;
pub mod pyramid;
pub mod resize;

pub use pyramid::{pyr_down2, pyramid_up};
pub use resize::{resize_plane_f32, resize_plane_f32_strided, resize_rgb};
