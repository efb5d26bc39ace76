"""Cloud profiles for the uplink: AWS IoT Core, Azure IoT Hub, Alibaba Cloud IoT."""
