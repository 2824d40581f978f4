FROM maven:3-eclipse-temurin-21
RUN mkdir -p /usr/src/app
WORKDIR /usr/src/app
ONBUILD COPY pom.xml /usr/src/app/
ONBUILD RUN mvn -B dependency:go-offline
ONBUILD COPY src /usr/src/app/src
CMD ["sh", "-c", "echo override me"]
