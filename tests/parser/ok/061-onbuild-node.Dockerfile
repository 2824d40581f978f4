FROM node:20
RUN mkdir -p /usr/src/app
WORKDIR /usr/src/app
ONBUILD COPY package*.json /usr/src/app/
ONBUILD RUN npm install
ONBUILD COPY . /usr/src/app
CMD ["sh", "-c", "echo override me"]
