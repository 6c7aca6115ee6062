//! dlib's face descriptor ResNet (`dlib_face_recognition_resnet_model_v1.dat`,
//! spec: `dlib-models.md` section 4): a 29-conv residual network (after He et
//! al., "Deep Residual Learning for Image Recognition", 2016) that maps a
//! 150x150 aligned face chip to a 128-D descriptor.
//!
//! The file stores the layers as a flat chain; which tag each skip and
//! add_prev refers to is not stored, so the residual wiring is hard-coded
//! here and the loader checks that the chain has exactly the expected shape.
//!
//! Cost: 270 854 144 multiply-adds per chip (29 convs + fc, counted as
//! `out_channels * out_pixels * in_channels * kh * kw`), i.e. **0.542 GFLOP**.

use image::RgbImage;
use rayon::prelude::*;

use crate::dlib::dnn::{self, Affine, Conv, Fc, InputLayer, Layer, Pool};
use crate::dlib::serialize::FormatError;
use crate::nn::conv::Epilogue;
use crate::nn::direct::{conv2d_packed, conv2d_packed_residual, PackedWeights};
use crate::nn::ops;
use crate::nn::tensor::Tensor;

/// Chip side length the network was trained on.
pub const CHIP_SIZE: u32 = 150;

/// Descriptor length.
pub const DESCRIPTOR_LEN: usize = 128;

/// Why a chip cannot be embedded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmbedError {
    /// The chip is not 150x150.
    #[error("face chip is {width}x{height}, expected 150x150")]
    ChipSize {
        /// Width given.
        width: u32,
        /// Height given.
        height: u32,
    },
}

/// A conv with its following affine.
#[derive(Debug, Clone)]
struct ConvAffine {
    conv: Conv,
    affine: Affine,
    /// The weights regrouped for [`conv2d_packed`], once at load.
    packed: PackedWeights,
}

impl ConvAffine {
    fn run(&self, x: &Tensor, relu: bool) -> Tensor {
        conv2d_packed(
            x,
            &self.conv,
            &self.packed,
            Epilogue {
                affine: Some(&self.affine),
                relu,
            },
        )
    }

    /// `relu(affine(conv(x)) + residual)`, dlib's zero-extending add.
    fn run_residual(&self, x: &Tensor, residual: &Tensor) -> Tensor {
        conv2d_packed_residual(
            x,
            &self.conv,
            &self.packed,
            Epilogue {
                affine: Some(&self.affine),
                relu: true,
            },
            residual,
        )
    }
}

/// `affine(con(relu(affine(con(x)))))`.
#[derive(Debug, Clone)]
struct Block {
    first: ConvAffine,
    second: ConvAffine,
}

/// One residual unit.
#[derive(Debug, Clone)]
enum Unit {
    /// `relu(block(x) + x)`.
    Same(Block),
    /// `relu(block(x) (+) avgpool(x))`, zero-extending add.
    Down(Block, Pool),
}

/// The face descriptor network, ready for inference.
#[derive(Debug, Clone)]
pub struct ResNet {
    means: [f32; 3],
    stem: ConvAffine,
    stem_pool: Pool,
    units: Vec<Unit>,
    global_pool: Pool,
    fc: Fc,
}

/// Chain pattern of section 4.3, input first: C conv, A affine, R relu,
/// M max pool, P avg pool, + add_prev, F fc, T tag/skip marker.
const STEM: &str = "CARM";
const SAME: &str = "TCARCA+R";
const DOWN: &str = "TCARCATTP+R";

/// (unit kind, filters) in order.
const UNITS: [(bool, usize); 14] = [
    (false, 32),
    (false, 32),
    (false, 32),
    (true, 64),
    (false, 64),
    (false, 64),
    (false, 64),
    (true, 128),
    (false, 128),
    (false, 128),
    (true, 256),
    (false, 256),
    (false, 256),
    (true, 256),
];

fn topology_error(reason: String) -> FormatError {
    FormatError {
        offset: 0,
        reason: format!("face ResNet topology: {reason}").into(),
    }
}

fn kind(l: &Layer) -> char {
    match l {
        Layer::Conv(_) => 'C',
        Layer::Affine(_) => 'A',
        Layer::Relu => 'R',
        Layer::MaxPool(_) => 'M',
        Layer::AvgPool(_) => 'P',
        Layer::AddPrev => '+',
        Layer::Fc(_) => 'F',
        Layer::Marker => 'T',
    }
}

/// Pulls typed layers off the (already pattern-checked) chain.
struct Chain(std::vec::IntoIter<Layer>);

impl Chain {
    fn conv_affine(
        &mut self,
        in_channels: usize,
        filters: usize,
        stride: usize,
    ) -> Result<ConvAffine, FormatError> {
        let (Some(Layer::Conv(conv)), Some(Layer::Affine(affine))) = (self.0.next(), self.0.next())
        else {
            return Err(topology_error("expected conv + affine".into()));
        };
        let pad = if stride == 1 { conv.kernel_h / 2 } else { 0 };
        let ok = conv.in_channels == in_channels
            && conv.filters == filters
            && conv.stride_y == stride
            && conv.stride_x == stride
            && conv.pad_y == pad
            && conv.pad_x == pad
            && affine.gamma.len() == filters
            && affine.beta.len() == filters;
        if !ok {
            return Err(topology_error(format!(
                "conv {}->{} stride {} pad {} does not match the expected {in_channels}->{filters} stride {stride}",
                conv.in_channels, conv.filters, conv.stride_y, conv.pad_y
            )));
        }
        let packed = PackedWeights::new(&conv);
        Ok(ConvAffine {
            conv,
            affine,
            packed,
        })
    }

    fn pool(&mut self) -> Result<Pool, FormatError> {
        match self.0.next() {
            Some(Layer::MaxPool(p) | Layer::AvgPool(p)) => Ok(p),
            _ => Err(topology_error("expected a pooling layer".into())),
        }
    }

    /// Skips layers whose kind the pattern check already guaranteed.
    fn skip(&mut self, n: usize) {
        for _ in 0..n {
            self.0.next();
        }
    }
}

impl ResNet {
    /// Loads and validates the network from the model file's bytes.
    ///
    /// # Errors
    ///
    /// A [`FormatError`] when the bytes are not a dlib DNN file or the chain
    /// is not the face ResNet of section 4.3 (layer kinds, channel counts,
    /// strides, padding, pooling windows, fc size).
    pub fn from_bytes(bytes: &[u8]) -> Result<ResNet, FormatError> {
        let file = dnn::parse(bytes)?;
        let means = match file.input {
            InputLayer::RgbImageSized {
                means,
                rows: 150,
                cols: 150,
            } => means,
            other => return Err(topology_error(format!("unexpected input layer {other:?}"))),
        };
        let mut expected = String::from(STEM);
        for (down, _) in UNITS {
            expected.push_str(if down { DOWN } else { SAME });
        }
        expected.push_str("PF");
        let found: String = file.layers.iter().map(kind).collect();
        if found != expected {
            return Err(topology_error(format!(
                "layer chain {found} differs from {expected}"
            )));
        }
        let mut chain = Chain(file.layers.into_iter());
        let stem = chain.conv_affine(3, 32, 2)?;
        chain.skip(1);
        let stem_pool = chain.pool()?;
        check_pool(&stem_pool, 3, 2)?;
        let mut units = Vec::with_capacity(UNITS.len());
        let mut channels = 32;
        for (down, filters) in UNITS {
            chain.skip(1);
            let first = chain.conv_affine(channels, filters, if down { 2 } else { 1 })?;
            chain.skip(1);
            let second = chain.conv_affine(filters, filters, 1)?;
            let block = Block { first, second };
            if down {
                chain.skip(2);
                let pool = chain.pool()?;
                check_pool(&pool, 2, 2)?;
                units.push(Unit::Down(block, pool));
            } else {
                units.push(Unit::Same(block));
            }
            chain.skip(2);
            channels = filters;
        }
        let global_pool = chain.pool()?;
        if global_pool.kernel_h != 0 || global_pool.kernel_w != 0 {
            return Err(topology_error(format!(
                "final pool {global_pool:?} is not global"
            )));
        }
        let Some(Layer::Fc(fc)) = chain.0.next() else {
            return Err(topology_error("expected the final fc".into()));
        };
        if fc.inputs != channels || fc.outputs != DESCRIPTOR_LEN {
            return Err(topology_error(format!(
                "fc is {}->{}, expected 256->128",
                fc.inputs, fc.outputs
            )));
        }
        Ok(ResNet {
            means,
            stem,
            stem_pool,
            units,
            global_pool,
            fc,
        })
    }

    /// The R, G, B means subtracted from the chip.
    pub fn means(&self) -> [f32; 3] {
        self.means
    }

    /// The normalised input tensor of section 4.2: planes R, G, B with
    /// `(v - mean) / 256`, computed in f32.
    ///
    /// # Errors
    ///
    /// [`EmbedError::ChipSize`] unless the chip is 150x150.
    pub fn input_tensor(&self, chip: &RgbImage) -> Result<Tensor, EmbedError> {
        let (width, height) = chip.dimensions();
        if (width, height) != (CHIP_SIZE, CHIP_SIZE) {
            return Err(EmbedError::ChipSize { width, height });
        }
        let (w, h) = (width as usize, height as usize);
        let mut t = Tensor::zeros(3, h, w);
        for (i, px) in chip.pixels().enumerate() {
            for c in 0..3 {
                t.data[c * h * w + i] = (f32::from(px[c]) - self.means[c]) / 256.0;
            }
        }
        Ok(t)
    }

    /// The 128-D descriptor of a 150x150 aligned face chip (not normalised).
    /// Runs on the calling thread only.
    ///
    /// # Errors
    ///
    /// [`EmbedError::ChipSize`] unless the chip is 150x150.
    pub fn embed(&self, chip: &RgbImage) -> Result<[f32; DESCRIPTOR_LEN], EmbedError> {
        let input = self.input_tensor(chip)?;
        Ok(self.forward(&input))
    }

    /// Descriptors of several chips, one chip per rayon task.
    ///
    /// # Errors
    ///
    /// [`EmbedError::ChipSize`] for the first chip that is not 150x150.
    pub fn embed_batch(
        &self,
        chips: &[RgbImage],
    ) -> Result<Vec<[f32; DESCRIPTOR_LEN]>, EmbedError> {
        chips.par_iter().map(|c| self.embed(c)).collect()
    }

    /// Runs the network on a normalised `3 x 150 x 150` tensor.
    ///
    /// # Panics
    ///
    /// If the tensor does not have 3 channels (other sizes would reach the
    /// fc with the wrong length and panic there); use [`ResNet::embed`].
    pub fn forward(&self, input: &Tensor) -> [f32; DESCRIPTOR_LEN] {
        let x = self.stem.run(input, true);
        let mut x = ops::max_pool(&x, &self.stem_pool);
        for unit in &self.units {
            x = match unit {
                Unit::Same(b) => b.second.run_residual(&b.first.run(&x, true), &x),
                Unit::Down(b, pool) => b
                    .second
                    .run_residual(&b.first.run(&x, true), &ops::avg_pool(&x, pool)),
            };
        }
        let pooled = ops::avg_pool(&x, &self.global_pool);
        let v = ops::fc(&pooled, &self.fc);
        let mut out = [0f32; DESCRIPTOR_LEN];
        out.copy_from_slice(&v);
        out
    }
}

fn check_pool(p: &Pool, kernel: usize, stride: usize) -> Result<(), FormatError> {
    if p.kernel_h == kernel && p.kernel_w == kernel && p.stride_y == stride && p.stride_x == stride
    {
        Ok(())
    } else {
        Err(topology_error(format!(
            "pool {p:?}, expected {kernel}x{kernel} stride {stride}"
        )))
    }
}
