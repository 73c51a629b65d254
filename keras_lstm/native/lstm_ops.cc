// Whole-sequence LSTM recurrence as two CPU TensorFlow ops.
//
// keras_lstm.fused computes the input projection zx = x·kernel + bias for all
// steps with one large matmul, then runs only the recurrence per step. These
// ops are that per-step loop written once in C++, so a step costs one small
// matmul and one pass of element-wise math, without the per-op dispatch of a
// tf.while_loop or the per-iteration cost of an XLA loop.
//
// Layouts (row-major, time-major), gate order i, f, c, o as keras:
//   zx, gates, dz: (T, B, 4U)   hs, cs, d_hs: (T, B, U)   h, c: (B, U)
//   recurrent_kernel: (U, 4U)   mask: (T, B) with 1 = run the step, 0 = keep
//   the states; or shape (0,) for no mask.
//
// The Python side (keras_lstm/native/__init__.py) compiles this file on first
// use and wraps the two ops with tf.custom_gradient.

#define EIGEN_USE_THREADS

#include <algorithm>
#include <cstring>
#include <initializer_list>
#include <limits>

#include "Eigen/Core"
#include "unsupported/Eigen/CXX11/Tensor"
#include "tensorflow/core/framework/op.h"
#include "tensorflow/core/framework/op_kernel.h"
#include "tensorflow/core/framework/shape_inference.h"

namespace keras_lstm {

using ::tensorflow::DEVICE_CPU;
using ::tensorflow::OpKernel;
using ::tensorflow::OpKernelConstruction;
using ::tensorflow::OpKernelContext;
using ::tensorflow::Status;
using ::tensorflow::Tensor;
using ::tensorflow::TensorShape;
using ::tensorflow::errors::InvalidArgument;
using ::tensorflow::shape_inference::DimensionHandle;
using ::tensorflow::shape_inference::InferenceContext;
using ::tensorflow::shape_inference::ShapeHandle;

using Matrix =
    Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatrixMap = Eigen::Map<Matrix>;
using ConstMatrixMap = Eigen::Map<const Matrix>;
using RowVector = Eigen::Matrix<float, 1, Eigen::Dynamic>;
using ConstRowMap = Eigen::Map<const RowVector>;

// out (m, n) = a (m, k) · b (k, n), or out += a · b with `accumulate`, all
// row-major. From `threaded_min_macs` multiply-adds on, the columns are split
// between the threads of the op's pool, each running Eigen's matrix product
// on its share (below, one thread is faster).
void MatMul(OpKernelContext* context, const float* a, const float* b,
            float* out, int64_t m, int64_t k, int64_t n,
            int64_t threaded_min_macs, bool accumulate = false) {
  const ConstMatrixMap a_map(a, m, k);
  const ConstMatrixMap b_map(b, k, n);
  MatrixMap out_map(out, m, n);
  auto multiply = [&](int64_t begin, int64_t end) {
    if (accumulate) {
      out_map.middleCols(begin, end - begin).noalias() +=
          a_map * b_map.middleCols(begin, end - begin);
    } else {
      out_map.middleCols(begin, end - begin).noalias() =
          a_map * b_map.middleCols(begin, end - begin);
    }
  };
  if (m * k * n < threaded_min_macs) {
    multiply(0, n);
    return;
  }
  const auto& device = context->eigen_device<Eigen::ThreadPoolDevice>();
  const int64_t parts =
      std::max<int64_t>(1, std::min<int64_t>(device.numThreads(), n / 64));
  device.parallelFor(parts, Eigen::TensorOpCost(0, 0, 1e9),
                     [&](Eigen::Index first, Eigen::Index last) {
                       for (Eigen::Index part = first; part < last; ++part) {
                         multiply(n * part / parts, n * (part + 1) / parts);
                       }
                     });
}

// Batch rows are independent through the whole recurrence, so the ops run
// row blocks, one per thread of the op's pool, each walking all the steps on
// its own: the matmul and the element-wise math are both split, and the
// threads never wait for each other between steps. Blocks have at least this
// many rows; a smaller batch runs on one thread and splits a large step's
// matmul by columns instead (see MatMul).
constexpr int64_t kMinRowsPerBlock = 16;

// How many row blocks ForRowBlocks cuts a batch into (1: run it whole).
int64_t RowBlockCount(OpKernelContext* context, int64_t batch) {
  const auto& device = context->eigen_device<Eigen::ThreadPoolDevice>();
  return std::max<int64_t>(
      1, std::min<int64_t>(device.numThreads(), batch / kMinRowsPerBlock));
}

// Calls run_rows(block, first_row, end_row, matmul_min_macs) on the
// RowBlockCount row blocks that cover [0, batch), in parallel when there are
// several. A row block gets a matmul_min_macs that never splits its matmul;
// a batch run whole gets `threaded_min_macs`.
template <typename RunRows>
void ForRowBlocks(OpKernelContext* context, int64_t batch,
                  int64_t threaded_min_macs, const RunRows& run_rows) {
  const int64_t blocks = RowBlockCount(context, batch);
  if (blocks == 1) {
    run_rows(0, 0, batch, threaded_min_macs);
    return;
  }
  const auto& device = context->eigen_device<Eigen::ThreadPoolDevice>();
  const int64_t never = std::numeric_limits<int64_t>::max();
  device.parallelFor(blocks, Eigen::TensorOpCost(0, 0, 1e9),
                     [&](Eigen::Index first, Eigen::Index last) {
                       for (Eigen::Index block = first; block < last;
                            ++block) {
                         run_rows(block, batch * block / blocks,
                                  batch * (block + 1) / blocks, never);
                       }
                     });
}

// Whether step t of batch row b runs (no mask: every step runs).
inline bool Runs(const float* mask, int64_t t, int64_t batch, int64_t b) {
  return mask == nullptr || mask[t * batch + b] != 0.0f;
}

// Checks the shapes shared by both ops; sets *time, *batch, *units.
Status CheckShapes(const Tensor& sequence, int sequence_width_factor,
                   const Tensor& state, const Tensor& recurrent_kernel,
                   const Tensor& mask, int64_t* time, int64_t* batch,
                   int64_t* units) {
  if (recurrent_kernel.dims() != 2 ||
      recurrent_kernel.dim_size(1) != 4 * recurrent_kernel.dim_size(0)) {
    return InvalidArgument("recurrent_kernel must be (units, 4 * units), got ",
                           recurrent_kernel.shape().DebugString());
  }
  *units = recurrent_kernel.dim_size(0);
  if (sequence.dims() != 3 ||
      sequence.dim_size(2) != sequence_width_factor * *units) {
    return InvalidArgument("sequence must be (time, batch, ",
                           sequence_width_factor, " * units), got ",
                           sequence.shape().DebugString());
  }
  *time = sequence.dim_size(0);
  *batch = sequence.dim_size(1);
  if (state.dims() != 2 || state.dim_size(0) != *batch ||
      state.dim_size(1) != *units) {
    return InvalidArgument("states must be (batch, units), got ",
                           state.shape().DebugString());
  }
  // (0,) means no mask; any other mask must cover every step of every row
  // (a (time, 0) mask for a non-empty batch is an error, not "no mask").
  const bool no_mask = mask.dims() == 1 && mask.dim_size(0) == 0;
  if (!no_mask && (mask.dims() != 2 || mask.dim_size(0) != *time ||
                   mask.dim_size(1) != *batch)) {
    return InvalidArgument("mask must be (time, batch) = (", *time, ", ",
                           *batch, ") or (0,) for no mask, got ",
                           mask.shape().DebugString());
  }
  return Status();
}

// The graph-time counterpart of CheckShapes: checks every input's rank and
// the dimensions known when a graph is built, so that a wrong input fails
// with an error when a tf.function is traced instead of crashing the
// process. Sets *sequence (time, batch, 4 * units) and *units.
Status InferShapes(InferenceContext* c, int sequence_input,
                   std::initializer_list<int> state_inputs, int kernel_input,
                   int mask_input, ShapeHandle* sequence,
                   DimensionHandle* units) {
  ShapeHandle kernel;
  TF_RETURN_IF_ERROR(c->WithRank(c->input(kernel_input), 2, &kernel));
  *units = c->Dim(kernel, 0);
  DimensionHandle width, merged;
  TF_RETURN_IF_ERROR(c->Multiply(*units, 4, &width));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(kernel, 1), width, &merged));
  TF_RETURN_IF_ERROR(c->WithRank(c->input(sequence_input), 3, sequence));
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(*sequence, 2), width, &merged));
  DimensionHandle batch = c->Dim(*sequence, 1);
  for (int input : state_inputs) {
    ShapeHandle state;
    TF_RETURN_IF_ERROR(c->WithRank(c->input(input), 2, &state));
    TF_RETURN_IF_ERROR(c->Merge(c->Dim(state, 0), batch, &batch));
    TF_RETURN_IF_ERROR(c->Merge(c->Dim(state, 1), *units, units));
  }
  ShapeHandle mask = c->input(mask_input);
  if (!c->RankKnown(mask)) return Status();
  if (c->Rank(mask) == 1) {
    DimensionHandle empty;
    return c->WithValue(c->Dim(mask, 0), 0, &empty);
  }
  TF_RETURN_IF_ERROR(c->WithRank(mask, 2, &mask));
  DimensionHandle time = c->Dim(*sequence, 0);
  TF_RETURN_IF_ERROR(c->Merge(c->Dim(mask, 0), time, &time));
  return c->Merge(c->Dim(mask, 1), batch, &batch);
}

REGISTER_OP("KerasLstmForward")
    .Input("zx: float")
    .Input("h0: float")
    .Input("c0: float")
    .Input("recurrent_kernel: float")
    .Input("mask: float")
    .Input("bias: float")
    .Attr("store_for_backward: bool")
    .Attr("threaded_min_macs: int = 2097152")
    .Output("hs: float")
    .Output("h_last: float")
    .Output("c_last: float")
    .Output("cs: float")
    .Output("gates: float")
    .SetShapeFn([](InferenceContext* c) {
      bool store;
      TF_RETURN_IF_ERROR(c->GetAttr("store_for_backward", &store));
      ShapeHandle zx, bias;
      DimensionHandle units;
      TF_RETURN_IF_ERROR(InferShapes(c, 0, {1, 2}, 3, 4, &zx, &units));
      TF_RETURN_IF_ERROR(c->WithRank(c->input(5), 1, &bias));
      ShapeHandle hs = c->MakeShape({c->Dim(zx, 0), c->Dim(zx, 1), units});
      c->set_output(0, hs);
      c->set_output(1, c->input(1));
      c->set_output(2, c->input(2));
      c->set_output(3, store ? hs : c->MakeShape({0}));
      c->set_output(4, store ? zx : c->MakeShape({0}));
      return Status();
    })
    .Doc("LSTM recurrence over time-major input projections (keras_lstm); "
         "bias (4 * units,) is added to every step's zx, or is empty.");

// Runs the recurrence forward; hs[t] = h_t, and with store_for_backward the
// cell states and activated gates of every step for KerasLstmBackward.
class KerasLstmForwardOp : public OpKernel {
 public:
  explicit KerasLstmForwardOp(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context,
                   context->GetAttr("store_for_backward", &store_));
    OP_REQUIRES_OK(context,
                   context->GetAttr("threaded_min_macs", &threaded_min_macs_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& zx = context->input(0);
    const Tensor& h0 = context->input(1);
    const Tensor& c0 = context->input(2);
    const Tensor& recurrent_kernel = context->input(3);
    const Tensor& mask_tensor = context->input(4);
    const Tensor& bias_tensor = context->input(5);
    int64_t time, batch, units;
    OP_REQUIRES_OK(context, CheckShapes(zx, 4, h0, recurrent_kernel,
                                        mask_tensor, &time, &batch, &units));
    OP_REQUIRES(context, c0.shape() == h0.shape(),
                InvalidArgument("c0 must have h0's shape ",
                                h0.shape().DebugString(), ", got ",
                                c0.shape().DebugString()));
    const int64_t gates_width = 4 * units;
    const int64_t state_size = batch * units;
    OP_REQUIRES(context,
                bias_tensor.dims() == 1 &&
                    (bias_tensor.dim_size(0) == 0 ||
                     bias_tensor.dim_size(0) == gates_width),
                InvalidArgument("bias must be (4 * units,) = (", gates_width,
                                ",) or empty, got ",
                                bias_tensor.shape().DebugString()));

    Tensor *hs_tensor, *h_last_tensor, *c_last_tensor, *cs_tensor,
        *gates_tensor;
    OP_REQUIRES_OK(context, context->allocate_output(
                                0, TensorShape({time, batch, units}),
                                &hs_tensor));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, h0.shape(), &h_last_tensor));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, c0.shape(), &c_last_tensor));
    OP_REQUIRES_OK(context,
                   context->allocate_output(
                       3, store_ ? hs_tensor->shape() : TensorShape({0}),
                       &cs_tensor));
    if (store_) {
      // The gates overwrite zx when nothing else holds it (each step reads
      // its zx rows before writing its gates there): one (T, B, 4U) buffer
      // less at the peak.
      OP_REQUIRES_OK(context, context->forward_input_or_allocate_output(
                                  {0}, 4, zx.shape(), &gates_tensor));
    } else {
      OP_REQUIRES_OK(context, context->allocate_output(4, TensorShape({0}),
                                                       &gates_tensor));
    }

    const float* mask =
        mask_tensor.NumElements() ? mask_tensor.flat<float>().data() : nullptr;
    const float* zx_data = zx.flat<float>().data();
    const float* bias =
        bias_tensor.NumElements() ? bias_tensor.flat<float>().data() : nullptr;
    const float* kernel = recurrent_kernel.flat<float>().data();
    float* hs = hs_tensor->flat<float>().data();
    float* cs = store_ ? cs_tensor->flat<float>().data() : nullptr;
    float* gates = store_ ? gates_tensor->flat<float>().data() : nullptr;
    float* h_last = h_last_tensor->flat<float>().data();
    float* c_last = c_last_tensor->flat<float>().data();

    // Rows [first, end) of every step; the blocks share no data.
    auto run_rows = [&](int64_t /*block*/, int64_t first, int64_t end,
                        int64_t matmul_min_macs) {
      const int64_t rows = end - first;
      // Without storage the cell state and gates live in scratch buffers.
      Matrix c_scratch[2] = {Matrix(rows, units), Matrix(rows, units)};
      Matrix gate_scratch(store_ ? 0 : rows, gates_width);
      const float* h_prev = h0.flat<float>().data() + first * units;
      const float* c_prev = c0.flat<float>().data() + first * units;
      for (int64_t t = 0; t < time; ++t) {
        const int64_t state_at = t * state_size + first * units;
        const int64_t gates_at = (t * batch + first) * gates_width;
        float* h_out = hs + state_at;
        float* c_out = store_ ? cs + state_at : c_scratch[t % 2].data();
        MatrixMap a(store_ ? gates + gates_at : gate_scratch.data(), rows,
                    gates_width);
        // z = zx_t + bias + h_{t-1}·U, computed in place of the gates.
        const ConstMatrixMap zx_t(zx_data + gates_at, rows, gates_width);
        if (bias != nullptr) {
          a = zx_t.rowwise() + ConstRowMap(bias, gates_width);
        } else {
          a = zx_t;
        }
        MatMul(context, h_prev, kernel, a.data(), rows, units, gates_width,
               matmul_min_macs, /*accumulate=*/true);
        a.leftCols(2 * units) = a.leftCols(2 * units).array().logistic();
        a.middleCols(2 * units, units) =
            a.middleCols(2 * units, units).array().tanh();
        a.rightCols(units) = a.rightCols(units).array().logistic();

        const ConstMatrixMap h_tm1(h_prev, rows, units);
        const ConstMatrixMap c_tm1(c_prev, rows, units);
        MatrixMap c_new(c_out, rows, units);
        MatrixMap h_new(h_out, rows, units);
        c_new.array() = a.middleCols(units, units).array() * c_tm1.array() +
                        a.leftCols(units).array() *
                            a.middleCols(2 * units, units).array();
        h_new.array() = a.rightCols(units).array() * c_new.array().tanh();
        if (mask != nullptr) {
          for (int64_t row = 0; row < rows; ++row) {
            if (!Runs(mask, t, batch, first + row)) {
              c_new.row(row) = c_tm1.row(row);
              h_new.row(row) = h_tm1.row(row);
            }
          }
        }
        h_prev = h_out;
        c_prev = c_out;
      }
      // An empty sequence (a chunk of zero steps) hands the states through.
      std::memcpy(h_last + first * units, h_prev, sizeof(float) * rows * units);
      std::memcpy(c_last + first * units, c_prev, sizeof(float) * rows * units);
    };
    ForRowBlocks(context, batch, threaded_min_macs_, run_rows);
  }

 private:
  bool store_;
  int64_t threaded_min_macs_;
};

REGISTER_KERNEL_BUILDER(Name("KerasLstmForward").Device(DEVICE_CPU),
                        KerasLstmForwardOp);

REGISTER_OP("KerasLstmBackward")
    .Input("d_hs: float")
    .Input("dh_last: float")
    .Input("dc_last: float")
    .Input("cs: float")
    .Input("gates: float")
    .Input("c0: float")
    .Input("recurrent_kernel: float")
    .Input("mask: float")
    .Attr("threaded_min_macs: int = 2097152")
    .Output("d_zs: float")
    .Output("dh0: float")
    .Output("dc0: float")
    .Output("d_bias: float")
    .SetShapeFn([](InferenceContext* c) {
      // d_hs, cs: (time, batch, units); gates: (time, batch, 4 * units).
      ShapeHandle gates, states, state_sequence;
      DimensionHandle units;
      TF_RETURN_IF_ERROR(InferShapes(c, 4, {1, 2, 5}, 6, 7, &gates, &units));
      for (int input : {0, 3}) {
        TF_RETURN_IF_ERROR(c->WithRank(c->input(input), 3, &states));
        TF_RETURN_IF_ERROR(c->Merge(
            states, c->MakeShape({c->Dim(gates, 0), c->Dim(gates, 1), units}),
            &state_sequence));
      }
      c->set_output(0, gates);
      c->set_output(1, c->input(5));
      c->set_output(2, c->input(5));
      c->set_output(3, c->Vector(c->Dim(gates, 2)));
      return Status();
    })
    .Doc("Gradient of KerasLstmForward with respect to zx, h0, c0 and the "
         "bias (the sum of d_zs over time and batch).");

// Walks time backwards from the stored cell states and gates. d_zs[t] is the
// gradient of the step's pre-activations; the weight gradients are large
// matmuls over all steps, done by the caller.
class KerasLstmBackwardOp : public OpKernel {
 public:
  explicit KerasLstmBackwardOp(OpKernelConstruction* context)
      : OpKernel(context) {
    OP_REQUIRES_OK(context,
                   context->GetAttr("threaded_min_macs", &threaded_min_macs_));
  }

  void Compute(OpKernelContext* context) override {
    const Tensor& d_hs_tensor = context->input(0);
    const Tensor& dh_last = context->input(1);
    const Tensor& dc_last = context->input(2);
    const Tensor& cs_tensor = context->input(3);
    const Tensor& gates_tensor = context->input(4);
    const Tensor& c0 = context->input(5);
    const Tensor& recurrent_kernel = context->input(6);
    const Tensor& mask_tensor = context->input(7);
    int64_t time, batch, units;
    OP_REQUIRES_OK(context, CheckShapes(gates_tensor, 4, c0, recurrent_kernel,
                                        mask_tensor, &time, &batch, &units));
    const TensorShape states({time, batch, units});
    OP_REQUIRES(context,
                d_hs_tensor.shape() == states && cs_tensor.shape() == states,
                InvalidArgument("d_hs and cs must be ", states.DebugString(),
                                ", got ", d_hs_tensor.shape().DebugString(),
                                " and ", cs_tensor.shape().DebugString()));
    OP_REQUIRES(context,
                dc_last.shape() == c0.shape() && dh_last.shape() == c0.shape(),
                InvalidArgument("dh_last and dc_last must have c0's shape ",
                                c0.shape().DebugString()));
    const int64_t gates_width = 4 * units;
    const int64_t state_size = batch * units;

    Tensor *d_zs_tensor, *dh0_tensor, *dc0_tensor, *d_bias_tensor;
    // d_zs overwrites the gates when nothing else holds them (each step
    // copies its gate rows out first).
    OP_REQUIRES_OK(context, context->forward_input_or_allocate_output(
                                {4}, 0, gates_tensor.shape(), &d_zs_tensor));
    OP_REQUIRES_OK(context,
                   context->allocate_output(1, c0.shape(), &dh0_tensor));
    OP_REQUIRES_OK(context,
                   context->allocate_output(2, c0.shape(), &dc0_tensor));
    OP_REQUIRES_OK(context, context->allocate_output(
                                3, TensorShape({gates_width}), &d_bias_tensor));
    Eigen::Map<RowVector> d_bias(d_bias_tensor->flat<float>().data(),
                                 gates_width);
    // Each row block sums its own share; the shares are added in block
    // order, so the result does not depend on which thread finishes first.
    Matrix block_d_bias = Matrix::Zero(RowBlockCount(context, batch),
                                       gates_width);

    const float* mask =
        mask_tensor.NumElements() ? mask_tensor.flat<float>().data() : nullptr;
    // dh_{t-1} = dz_t · kernelᵀ: transposed once, so every step reads rows.
    const Matrix kernel_t =
        ConstMatrixMap(recurrent_kernel.flat<float>().data(), units,
                       gates_width)
            .transpose();
    const float* d_hs = d_hs_tensor.flat<float>().data();
    const float* cs = cs_tensor.flat<float>().data();
    const float* gates = gates_tensor.flat<float>().data();
    float* d_zs = d_zs_tensor->flat<float>().data();

    const float* c0_data = c0.flat<float>().data();
    float* dh0 = dh0_tensor->flat<float>().data();
    float* dc0 = dc0_tensor->flat<float>().data();

    // Rows [first, end) of every step; the blocks share no data.
    auto run_rows = [&](int64_t block, int64_t first, int64_t end,
                        int64_t matmul_min_macs) {
      const int64_t rows = end - first;
      MatrixMap dh(dh0 + first * units, rows, units);
      MatrixMap dc(dc0 + first * units, rows, units);
      dh = ConstMatrixMap(dh_last.flat<float>().data() + first * units, rows,
                          units);
      dc = ConstMatrixMap(dc_last.flat<float>().data() + first * units, rows,
                          units);
      Matrix tanh_c(rows, units), dc_carried(rows, units);
      Matrix a(rows, gates_width);  // This step's gates.

      for (int64_t t = time - 1; t >= 0; --t) {
        const int64_t state_at = t * state_size + first * units;
        const int64_t gates_at = (t * batch + first) * gates_width;
        a = ConstMatrixMap(gates + gates_at, rows, gates_width);
        const auto i = a.leftCols(units).array();
        const auto f = a.middleCols(units, units).array();
        const auto c_hat = a.middleCols(2 * units, units).array();
        const auto o = a.rightCols(units).array();
        const ConstMatrixMap c_t(cs + state_at, rows, units);
        const ConstMatrixMap c_tm1(
            t > 0 ? cs + state_at - state_size : c0_data + first * units,
            rows, units);
        MatrixMap dz(d_zs + gates_at, rows, gates_width);

        dh += ConstMatrixMap(d_hs + state_at, rows, units);
        if (mask != nullptr) dc_carried = dc;
        tanh_c.array() = c_t.array().tanh();
        dc.array() += dh.array() * o * (1.0f - tanh_c.array().square());
        dz.leftCols(units).array() = dc.array() * c_hat * i * (1.0f - i);
        dz.middleCols(units, units).array() =
            dc.array() * c_tm1.array() * f * (1.0f - f);
        dz.middleCols(2 * units, units).array() =
            dc.array() * i * (1.0f - c_hat.square());
        dz.rightCols(units).array() =
            dh.array() * tanh_c.array() * o * (1.0f - o);
        dc.array() *= f;
        if (mask != nullptr) {
          // A step that did not run passes dh and dc straight to t - 1.
          for (int64_t row = 0; row < rows; ++row) {
            if (!Runs(mask, t, batch, first + row)) {
              dz.row(row).setZero();
              dc.row(row) = dc_carried.row(row);
              dc_carried.row(row) = dh.row(row);  // Reused: the dh to keep.
            }
          }
        }
        for (int64_t row = 0; row < rows; ++row) {
          block_d_bias.row(block) += dz.row(row);
        }
        MatMul(context, dz.data(), kernel_t.data(), dh.data(), rows,
               gates_width, units, matmul_min_macs);
        if (mask != nullptr) {
          for (int64_t row = 0; row < rows; ++row) {
            if (!Runs(mask, t, batch, first + row)) {
              dh.row(row) = dc_carried.row(row);
            }
          }
        }
      }
    };
    ForRowBlocks(context, batch, threaded_min_macs_, run_rows);
    d_bias = block_d_bias.colwise().sum();
  }

 private:
  int64_t threaded_min_macs_;
};

REGISTER_KERNEL_BUILDER(Name("KerasLstmBackward").Device(DEVICE_CPU),
                        KerasLstmBackwardOp);

}  // namespace keras_lstm
