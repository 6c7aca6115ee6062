//! A generic reader for dlib DNN files (spec: `dlib-models.md` sections 2-3).
//!
//! A dlib network serializes as a chain of wrappers written outside-in, but
//! every layer wrapper writes its sub-network *before* its own record. The
//! file is therefore: the loss record, a run of wrapper version integers
//! (output end first, ending with `3`), the input record, then the layer
//! records input-first. That lets us read any such file without knowing the
//! network; the residual wiring (which tag a skip or add_prev refers to) is
//! not stored and must be supplied by the model code.

use super::serialize::{FormatError, RawTensor, Reader, Result};

/// The training loss the network was saved with.
#[derive(Debug, Clone, PartialEq)]
pub enum Loss {
    /// `loss_metric_2` (face descriptor ResNet); training-only parameters.
    Metric {
        /// Margin of the metric loss.
        margin: f32,
        /// Distance threshold ("same person" at or below).
        dist_thresh: f32,
    },
    /// `loss_mmod_` (MMOD detector).
    Mmod(MmodOptions),
}

/// `mmod_options` (version 1: a single detector window).
#[derive(Debug, Clone, PartialEq)]
pub struct MmodOptions {
    /// Detector window width in pixels of the pyramid image.
    pub window_width: usize,
    /// Detector window height.
    pub window_height: usize,
    /// Training loss per false alarm.
    pub loss_per_false_alarm: f64,
    /// Training loss per missed target.
    pub loss_per_missed_target: f64,
    /// Training truth-match IoU threshold.
    pub truth_match_iou_threshold: f64,
    /// Non-max-suppression IoU threshold.
    pub nms_iou_thresh: f64,
    /// Non-max-suppression covered-fraction threshold.
    pub nms_percent_covered_thresh: f64,
    /// Training-only ignore IoU threshold.
    pub ignore_iou_thresh: f64,
    /// Training-only ignore covered-fraction threshold.
    pub ignore_percent_covered_thresh: f64,
}

/// The network's input layer.
#[derive(Debug, Clone, PartialEq)]
pub enum InputLayer {
    /// `input_rgb_image_sized`: fixed-size RGB input.
    RgbImageSized {
        /// Mean of R, G, B subtracted before scaling by 1/256.
        means: [f32; 3],
        /// Required rows.
        rows: usize,
        /// Required columns.
        cols: usize,
    },
    /// `input_rgb_image_pyramid` (old string: padding 10, outer padding 11).
    RgbImagePyramid {
        /// Mean of R, G, B.
        means: [f32; 3],
        /// Padding between pyramid tiles.
        padding: usize,
        /// Padding around the tiled image.
        outer_padding: usize,
    },
}

impl InputLayer {
    /// The R, G, B means.
    pub fn means(&self) -> [f32; 3] {
        match self {
            InputLayer::RgbImageSized { means, .. } | InputLayer::RgbImagePyramid { means, .. } => {
                *means
            }
        }
    }
}

/// A convolution (`con_4`): bias on, no fused relu.
#[derive(Debug, Clone, PartialEq)]
pub struct Conv {
    /// Output channels.
    pub filters: usize,
    /// Input channels.
    pub in_channels: usize,
    /// Kernel rows.
    pub kernel_h: usize,
    /// Kernel columns.
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_y: usize,
    /// Horizontal stride.
    pub stride_x: usize,
    /// Zero rows added above and below.
    pub pad_y: usize,
    /// Zero columns added left and right.
    pub pad_x: usize,
    /// Weights, row-major over (filter, in-channel, row, col).
    pub weights: Vec<f32>,
    /// One bias per filter.
    pub biases: Vec<f32>,
}

/// A per-channel scale and shift (`affine_` mode 0, or a folded `bn_con2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Affine {
    /// Scale per channel.
    pub gamma: Vec<f32>,
    /// Shift per channel.
    pub beta: Vec<f32>,
}

/// Pooling geometry (`max_pool_2` / `avg_pool_2`); a 0x0 window is global.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool {
    /// Window rows (0 = all rows).
    pub kernel_h: usize,
    /// Window columns (0 = all columns).
    pub kernel_w: usize,
    /// Vertical stride.
    pub stride_y: usize,
    /// Horizontal stride.
    pub stride_x: usize,
    /// Vertical padding (0 in the supported models).
    pub pad_y: usize,
    /// Horizontal padding (0 in the supported models).
    pub pad_x: usize,
}

/// A fully connected layer (`fc_2`).
#[derive(Debug, Clone, PartialEq)]
pub struct Fc {
    /// Flattened input length.
    pub inputs: usize,
    /// Output length.
    pub outputs: usize,
    /// Row-major `inputs x outputs`: `out[j] = sum_i in[i] * w[i * outputs + j]`.
    pub weights: Vec<f32>,
    /// Bias per output, if the layer has one.
    pub biases: Option<Vec<f32>>,
}

/// One entry of the network chain, input side first.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// Convolution.
    Conv(Conv),
    /// Per-channel affine (batch norm is folded into this at load).
    Affine(Affine),
    /// `max(x, 0)`.
    Relu,
    /// Max pooling.
    MaxPool(Pool),
    /// Average pooling.
    AvgPool(Pool),
    /// Adds a tagged earlier output (which tag is not stored in the file).
    AddPrev,
    /// Fully connected.
    Fc(Fc),
    /// A tag or skip wrapper: the file does not distinguish them.
    Marker,
}

/// A parsed dlib DNN file.
#[derive(Debug, Clone, PartialEq)]
pub struct DnnFile {
    /// The loss layer.
    pub loss: Loss,
    /// The input layer.
    pub input: InputLayer,
    /// The chain from the layer next to the input to the output layer.
    pub layers: Vec<Layer>,
}

/// Parses a whole dlib DNN file.
///
/// # Errors
///
/// A [`FormatError`] (with byte offset) for anything unexpected: unknown
/// record types or versions, inconsistent parameter sizes, truncation or
/// trailing bytes.
pub fn parse(bytes: &[u8]) -> Result<DnnFile> {
    let mut r = Reader::new(bytes);
    r.expect_version(1, "loss wrapper")?;
    let loss = read_loss(&mut r)?;
    // The run of wrapper versions, output end first, up to the one wrapping
    // the input layer.
    let mut run = Vec::new();
    loop {
        let at = r.offset();
        match r.i32()? {
            1 => run.push(false),
            2 => run.push(true),
            3 => break,
            v => return Err(at_error(at, format!("unsupported wrapper version {v}"))),
        }
    }
    let input = read_input(&mut r)?;
    let mut layers = Vec::with_capacity(run.len() + 1);
    layers.push(read_layer(&mut r)?);
    read_trailer(&mut r, true)?;
    for &is_layer in run.iter().rev() {
        if is_layer {
            layers.push(read_layer(&mut r)?);
            read_trailer(&mut r, false)?;
        } else {
            layers.push(Layer::Marker);
        }
    }
    r.finish()?;
    Ok(DnnFile {
        loss,
        input,
        layers,
    })
}

fn at_error(offset: usize, reason: String) -> FormatError {
    FormatError {
        offset,
        reason: reason.into(),
    }
}

fn read_loss(r: &mut Reader<'_>) -> Result<Loss> {
    let at = r.offset();
    match r.string()?.as_str() {
        "loss_metric_2" => Ok(Loss::Metric {
            margin: r.f32()?,
            dist_thresh: r.f32()?,
        }),
        "loss_mmod_" => {
            r.expect_version(1, "mmod_options")?;
            Ok(Loss::Mmod(MmodOptions {
                window_width: r.usize()?,
                window_height: r.usize()?,
                loss_per_false_alarm: r.f64()?,
                loss_per_missed_target: r.f64()?,
                truth_match_iou_threshold: r.f64()?,
                nms_iou_thresh: r.f64()?,
                nms_percent_covered_thresh: r.f64()?,
                ignore_iou_thresh: r.f64()?,
                ignore_percent_covered_thresh: r.f64()?,
            }))
        }
        other => Err(at_error(at, format!("unsupported loss layer {other:?}"))),
    }
}

fn read_means(r: &mut Reader<'_>) -> Result<[f32; 3]> {
    Ok([r.f32()?, r.f32()?, r.f32()?])
}

fn read_input(r: &mut Reader<'_>) -> Result<InputLayer> {
    let at = r.offset();
    match r.string()?.as_str() {
        "input_rgb_image_sized" => Ok(InputLayer::RgbImageSized {
            means: read_means(r)?,
            rows: r.usize()?,
            cols: r.usize()?,
        }),
        "input_rgb_image_pyramid" => Ok(InputLayer::RgbImagePyramid {
            means: read_means(r)?,
            padding: 10,
            outer_padding: 11,
        }),
        "input_rgb_image_pyramid2" => Ok(InputLayer::RgbImagePyramid {
            means: read_means(r)?,
            padding: r.usize()?,
            outer_padding: r.usize()?,
        }),
        other => Err(at_error(at, format!("unsupported input layer {other:?}"))),
    }
}

/// Skips the training/bookkeeping fields after a layer record (T2 or T3).
fn read_trailer(r: &mut Reader<'_>, first: bool) -> Result<()> {
    for _ in 0..3 {
        r.bool()?;
    }
    for _ in 0..3 {
        r.tensor()?;
    }
    if first {
        let at = r.offset();
        let factor = r.u64()?;
        if factor != 1 {
            return Err(at_error(
                at,
                format!("sample_expansion_factor {factor}, expected 1"),
            ));
        }
    }
    Ok(())
}

fn read_layer(r: &mut Reader<'_>) -> Result<Layer> {
    let at = r.offset();
    let name = r.string()?;
    let layer = match name.as_str() {
        "con_4" => Layer::Conv(read_conv(r)?),
        "bn_con2" => Layer::Affine(read_bn(r)?),
        "affine_" => Layer::Affine(read_affine(r)?),
        "relu_" => Layer::Relu,
        "max_pool_2" => Layer::MaxPool(read_pool(r)?),
        "avg_pool_2" => Layer::AvgPool(read_pool(r)?),
        "add_prev_" => Layer::AddPrev,
        "fc_2" => Layer::Fc(read_fc(r)?),
        other => return Err(at_error(at, format!("unsupported layer {other:?}"))),
    };
    Ok(layer)
}

/// Reads an `int` that must be a non-negative size.
fn read_int_size(r: &mut Reader<'_>) -> Result<usize> {
    let at = r.offset();
    let v = r.i32()?;
    usize::try_from(v).map_err(|_| at_error(at, format!("negative size {v}")))
}

/// Reads an alias tensor and checks its dims.
fn expect_alias(r: &mut Reader<'_>, want: [usize; 4], what: &str) -> Result<()> {
    let at = r.offset();
    let dims = r.alias_tensor()?;
    if dims == want {
        Ok(())
    } else {
        Err(at_error(
            at,
            format!("{what} alias has dims {dims:?}, expected {want:?}"),
        ))
    }
}

fn skip_multipliers(r: &mut Reader<'_>, n: usize) -> Result<()> {
    for _ in 0..n {
        r.f64()?;
    }
    Ok(())
}

fn read_conv(r: &mut Reader<'_>) -> Result<Conv> {
    let params = r.tensor()?;
    let filters = r.non_negative()?;
    let kernel_h = r.non_negative()?;
    let kernel_w = r.non_negative()?;
    let stride_y = read_int_size(r)?;
    let stride_x = read_int_size(r)?;
    let pad_y = read_int_size(r)?;
    let pad_x = read_int_size(r)?;
    let at = r.offset();
    let dims = r.alias_tensor()?;
    if dims[0] != filters || dims[2] != kernel_h || dims[3] != kernel_w {
        return Err(at_error(
            at,
            format!("filter alias {dims:?} disagrees with the record"),
        ));
    }
    let in_channels = dims[1];
    expect_alias(r, [1, filters, 1, 1], "bias")?;
    skip_multipliers(r, 4)?;
    if stride_y == 0 || stride_x == 0 || filters == 0 || kernel_h == 0 || kernel_w == 0 {
        return Err(r.error("convolution with a zero size or stride"));
    }
    let n_weights = filters * in_channels * kernel_h * kernel_w;
    let (weights, biases) = split_params(r, params, &[n_weights, filters])?;
    Ok(Conv {
        filters,
        in_channels,
        kernel_h,
        kernel_w,
        stride_y,
        stride_x,
        pad_y,
        pad_x,
        weights,
        biases,
    })
}

/// Splits a flat params tensor into consecutive pieces of the given sizes.
fn split_params(
    r: &Reader<'_>,
    params: RawTensor,
    sizes: &[usize],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let total: usize = sizes.iter().sum();
    if params.len() != total {
        return Err(r.error(format!(
            "params hold {} values, expected {total}",
            params.len()
        )));
    }
    let mut data = params.data;
    let second = data.split_off(sizes[0]);
    Ok((data, second))
}

fn read_affine(r: &mut Reader<'_>) -> Result<Affine> {
    let params = r.tensor()?;
    let channels = params.len() / 2;
    expect_alias(r, [1, channels, 1, 1], "gamma")?;
    expect_alias(r, [1, channels, 1, 1], "beta")?;
    let at = r.offset();
    let mode = r.i32()?;
    if mode != 0 {
        return Err(at_error(
            at,
            format!("affine mode {mode}, only conv mode (0) is supported"),
        ));
    }
    let (gamma, beta) = split_params(r, params, &[channels, channels])?;
    Ok(Affine { gamma, beta })
}

/// Reads `bn_con2` and folds its running statistics into an affine layer,
/// in f32 as dlib does when it converts bn to affine for inference.
fn read_bn(r: &mut Reader<'_>) -> Result<Affine> {
    let params = r.tensor()?;
    let channels = params.len() / 2;
    expect_alias(r, [1, channels, 1, 1], "gamma")?;
    expect_alias(r, [1, channels, 1, 1], "beta")?;
    let _means = r.tensor()?;
    let _invstds = r.tensor()?;
    let running_means = r.tensor()?;
    let running_vars = r.tensor()?;
    if running_means.len() != channels || running_vars.len() != channels {
        return Err(r.error("batch-norm running statistics have the wrong length"));
    }
    r.u64()?; // num_updates
    r.u64()?; // running_stats_window_size
    skip_multipliers(r, 4)?;
    let eps = r.f64()? as f32;
    let (gamma, beta) = split_params(r, params, &[channels, channels])?;
    let mut g = Vec::with_capacity(channels);
    let mut b = Vec::with_capacity(channels);
    for c in 0..channels {
        let scale = gamma[c] / (running_vars.data[c] + eps).sqrt();
        g.push(scale);
        b.push(beta[c] - scale * running_means.data[c]);
    }
    Ok(Affine { gamma: g, beta: b })
}

fn read_pool(r: &mut Reader<'_>) -> Result<Pool> {
    let pool = Pool {
        kernel_h: r.non_negative()?,
        kernel_w: r.non_negative()?,
        stride_y: read_int_size(r)?,
        stride_x: read_int_size(r)?,
        pad_y: read_int_size(r)?,
        pad_x: read_int_size(r)?,
    };
    if pool.stride_y == 0 || pool.stride_x == 0 {
        return Err(r.error("pooling with a zero stride"));
    }
    if pool.pad_y != 0 || pool.pad_x != 0 {
        return Err(r.error("padded pooling is not supported"));
    }
    Ok(pool)
}

fn read_fc(r: &mut Reader<'_>) -> Result<Fc> {
    let outputs = r.usize()?;
    let inputs = r.usize()?;
    let params = r.tensor()?;
    expect_alias(r, [inputs, outputs, 1, 1], "weights")?;
    let bias_at = r.offset();
    let bias_dims = r.alias_tensor()?;
    let at = r.offset();
    let has_bias = match r.i32()? {
        0 => true,
        1 => false,
        m => return Err(at_error(at, format!("fc bias mode {m}"))),
    };
    skip_multipliers(r, 4)?;
    let n_weights = inputs
        .checked_mul(outputs)
        .ok_or_else(|| r.error("fc size overflows"))?;
    let n_bias = if has_bias { outputs } else { 0 };
    if has_bias && bias_dims != [1, outputs, 1, 1] {
        return Err(at_error(
            bias_at,
            format!("bias alias has dims {bias_dims:?}"),
        ));
    }
    let (weights, biases) = split_params(r, params, &[n_weights, n_bias])?;
    Ok(Fc {
        inputs,
        outputs,
        weights,
        biases: has_bias.then_some(biases),
    })
}

#[cfg(test)]
#[path = "dnn_tests.rs"]
mod tests;
