FROM busybox
LABEL description="日本語のラベル" emoji="🐳"
RUN echo "héllo wörld" > /greeting
ENV GRÜSSE=hallo
