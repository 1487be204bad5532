"""A plain Keras transfer-learning script, as keras.io's guide writes it: a frozen
MobileNetV3Small (weights from a local file) called with training=False, dropout and a
new softmax head, `model.fit` on arrays.

The reference for bench/transfer.py. Prints one JSON line: the time at the end of each
epoch and the steps per epoch.
Usage: python bench/plain_transfer.py BACKEND DATA.npz WEIGHTS.weights.h5 EPOCHS
"""

import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = sys.argv[1]
data_path, weights_path, epochs = sys.argv[2], sys.argv[3], int(sys.argv[4])

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

data = np.load(data_path)
x, y = data["x"], data["y"]
train = int(len(x) * 0.8)  # kbuilder's run below trains on 80 % too (test_split=0.2)
keras.utils.set_random_seed(0)
base = keras.applications.MobileNetV3Small(
    include_top=False, weights=weights_path, pooling="avg", input_shape=x.shape[1:])
base.trainable = False
inputs = keras.Input(x.shape[1:])
h = base(inputs, training=False)
h = layers.Dropout(0.2)(h)
outputs = layers.Dense(int(y.max()) + 1, activation="softmax")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])
times = {"epoch_ends": [], "steps_per_epoch": -(-train // 32)}


class Clock(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        times["epoch_ends"].append(time.perf_counter())


model.fit(x[:train], y[:train], epochs=epochs, batch_size=32, verbose=0, callbacks=[Clock()])
status = open("/proc/self/status").read()  # the process's peak RSS (VmHWM), imports included
times["rss"] = int(status.split("VmHWM:")[1].split()[0]) * 1024
print(json.dumps(times))
