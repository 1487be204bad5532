"""A plain Keras script: the CNN template's model on digits with `model.fit`.

The reference for bench/train_overhead.py. Prints one JSON line: time from launch to the
end of the first batch, and the time at the end of each epoch.
Usage: python bench/plain_fit.py BACKEND EPOCHS LAUNCH_TIME
"""

import json
import os
import sys
import time

os.environ["KERAS_BACKEND"] = sys.argv[1]
epochs, launched = int(sys.argv[2]), float(sys.argv[3])

import keras  # noqa: E402
from keras import layers  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

digits = load_digits()
x = (digits.images / 16.0).astype("float32")[..., None]
x_train, x_test, y_train, y_test = train_test_split(
    x, digits.target, test_size=0.2, stratify=digits.target, random_state=0
)
keras.utils.set_random_seed(0)
inputs = keras.Input((8, 8, 1))
h = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
h = layers.MaxPooling2D(2)(h)
h = layers.Conv2D(64, 3, padding="same", activation="relu")(h)
h = layers.MaxPooling2D(2)(h)
h = layers.Flatten()(h)
h = layers.Dropout(0.3)(h)
outputs = layers.Dense(10, activation="softmax")(h)
model = keras.Model(inputs, outputs)
model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy",
              metrics=["accuracy"])

times = {"first_batch": None, "epoch_ends": []}


class Clock(keras.callbacks.Callback):
    def on_train_batch_begin(self, batch, logs=None):
        # Batch 1 begins after batch 0 has run: the end of the first batch, without
        # adding a batch-end hook that would change how Keras runs the loop.
        if batch == 1 and times["first_batch"] is None:
            times["first_batch"] = time.time() - launched

    def on_epoch_end(self, epoch, logs=None):
        times["epoch_ends"].append(time.perf_counter())


model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0, callbacks=[Clock()])
times["steps_per_epoch"] = -(-len(x_train) // 32)
print(json.dumps(times))
